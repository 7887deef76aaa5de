"""Pure-Python reading of Ocean eReferral FHIR message bundles (no Django).

- ``harbour.fhir.codes``: event codes, naming-system suffixes, extension and profile URLs.
- ``harbour.fhir.model``: the frozen dataclasses the reader returns.
- ``harbour.fhir.read``: ``check_envelope`` (fast intake check) and ``read_message`` (lenient reader).
- ``harbour.fhir.inspect``: ``inspect_bytes``, a JSON-ready summary of what Harbour reads from raw bytes.
"""
