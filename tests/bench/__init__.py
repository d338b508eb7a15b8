"""Tests of the measuring scripts in bench/ (the parts whose failure would mislead)."""
