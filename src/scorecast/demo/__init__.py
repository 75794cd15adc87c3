"""The demo: synthetic speech (synth), impairments and the STOI label (impairments), and the demo job (job)."""
