"""ewarn core: validation, detection and alert lifecycle as pure, framework-free code.

Only the standard library and numpy are imported by the core modules; the edges
(``pipeline.cli``, ``pipeline.broker``, ``pipeline.kafka_io``, ``pipeline.metrics``)
import the core, never the reverse (``tests/unit/test_layering.py`` keeps it so).
"""

__version__ = "0.1.0"
