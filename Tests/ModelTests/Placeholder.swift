// Tests for Model are added by the work that builds it.
