// Tests for OpenAIAPI are added by the work that builds it.
