"""Files shipped inside the smeintl package (data only, no code).

- ``hitachi.toml``: the default instrument;
- ``hitachi_synthetic.csv``: the example survey (41 synthetic firms), with its codebook
  ``README.md``;
- ``study_example.toml``, ``study_tiny.toml``: example simulation studies;
- ``tiny_instrument.toml``: a six-item instrument (the tiny study's).

Find them with :func:`smeintl.resources.bundled` (``importlib.resources``), never by a
path relative to the source tree.
"""
