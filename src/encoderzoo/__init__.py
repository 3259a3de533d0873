"""encoderzoo: turn a fine-tuned BERT-family checkpoint and a task dataset into a verified,
optimized and benchmarked inference artifact, and use it as it was verified:

    import encoderzoo
    model = encoderzoo.load("runs/demo")        # the fastest variant that passed its gate
    model.predict(["a gripping film", "dull"])
"""

from encoderzoo.api import Model, load
from encoderzoo.version import __version__

__all__ = ["Model", "__version__", "load"]
