// Tests for Engine are added by the work that builds it.
