"""`depth-anything-ros serve`: metric depth over HTTP, a web page (Gradio) and a plain route, one model per process."""
