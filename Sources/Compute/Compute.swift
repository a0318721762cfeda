// Compute module: files are added by the work that builds it.
