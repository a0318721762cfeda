// Tests for GGUF are added by the work that builds it.
