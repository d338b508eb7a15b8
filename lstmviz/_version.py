"""lstmviz's version, in a module of its own: every part can read it without importing the
package root (which offers ``lstmviz.show``, the window)."""

__version__ = "0.1.0"
