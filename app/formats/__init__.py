"""Pure translations between the internal (OpenAI) shapes and Ollama's, used both by the
Ollama dialect (inbound) and the Ollama adapter (outbound)."""
