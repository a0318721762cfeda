// Tests for Compute are added by the work that builds it.
