// Tests for ChatTemplate are added by the work that builds it.
