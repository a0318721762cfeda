// Tests for HTTPServer are added by the work that builds it.
