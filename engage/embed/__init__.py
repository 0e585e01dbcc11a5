"""Embedding machinery: photo decoding (decoding.py, jpeg.py), devices (device.py), the ONNX runtime
(runtime.py), the image and text embedders (image.py,
text.py) and the content-hash vector cache (cache.py)."""
