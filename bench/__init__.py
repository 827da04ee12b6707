"""`make bench`: each stage at reference scale beside a named peer baseline, in the same run."""
