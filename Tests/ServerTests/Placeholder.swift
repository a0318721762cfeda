// Tests for Server are added by the work that builds it.
