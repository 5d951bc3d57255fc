"""Statistical analysis: pyhf workspaces from histograms, fits, significances and limits."""
