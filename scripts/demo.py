"""`make demo`: placeholder until the learners land (replaced by the learners issue)."""
