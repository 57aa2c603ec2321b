"""edgeroam: decides where customer network functions run, and keeps deciding."""

__version__ = "0.1.0"
