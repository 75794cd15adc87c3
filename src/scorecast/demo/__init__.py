"""The demo: synthetic speech (synth), impairments and the STOI label (impairments), and the demo job (job).

``scorecast.demo.make_corpus(out_dir, n=160, seed=0)`` (from :mod:`scorecast.demo.job`, imported on
first use) writes a labelled table of synthetic clips."""


def __getattr__(name: str):
    if name == "make_corpus":
        from scorecast.demo.job import make_corpus

        return make_corpus
    raise AttributeError(f"module 'scorecast.demo' has no attribute {name!r}")
