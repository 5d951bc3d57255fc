"""Statistical analysis: pyhf workspaces from histograms, fits, significances and limits.

* :mod:`ewpolar.stats.workspace`: the generic workspace builder and the samples of a
  histograms file;
* :mod:`ewpolar.stats.likelihood`: fits, discovery significances, CLs upper limits
  and profile-likelihood scans of any pyhf model;
* :mod:`ewpolar.stats.ssww`, :mod:`ewpolar.stats.wh`: each channel's model and fit.

Their results are the containers of :mod:`ewpolar.core.results`.
"""
