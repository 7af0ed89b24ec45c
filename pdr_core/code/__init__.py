"""Code tasks: programs as answers, their tests as the verifier (see executor.py for the
containment of model-written code)."""
