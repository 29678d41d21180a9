"""Image classification with pretrained ImageNet networks, without Streamlit.

Importing this package is cheap: TensorFlow is imported only when a model has
to be built or exported, never to run a cached one.
"""
