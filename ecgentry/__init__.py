"""The Challenge entry: reading Challenge records, training the shared multi-head model, running it."""
