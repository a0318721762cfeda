// Tests for Scheduling are added by the work that builds it.
