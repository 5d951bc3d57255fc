"""The core layer: configuration, errors, naming of systematics and histograms, and output
writing. It imports nothing else of ewpolar, so every other layer can build on it."""
