"""The runtime: engines, the engine cache folder, child processes, and what is open.

It knows nothing of kinds of model, features, maps or the database: `classifier.models`
decides what a model is and opens its engine with these pieces.

- `engines`: LiteRT, Keras and exporting engines (a batch in, probabilities out).
- `cache`: engine files exported once per machine, checked on every open.
- `child`: work run in a child process within limits of memory and time.
- `opened`: open each thing once per process.
"""
