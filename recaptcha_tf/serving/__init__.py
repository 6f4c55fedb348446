"""Serving: the Gradio demo and its HTTP route (:mod:`.app`), with micro-batching (:mod:`.batching`)."""
