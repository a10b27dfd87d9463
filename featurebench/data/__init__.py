"""Data sources (what images, with which labels), robust decoding, and the batching pipeline."""
