// Tests for Tokenizer are added by the work that builds it.
