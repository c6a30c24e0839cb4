"""The Gradio web page over `rag.Assistant` (started by `rag serve`)."""
