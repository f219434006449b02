"""Fuzzing of the two model loaders (JSON configs and ONNX files): generators of valid inputs, their
mutations, the rule every input must follow (:mod:`fuzz.harness`) and the corpus of inputs kept.

A package so that its modules import as ``fuzz.*`` beside the top-level test helpers.
"""
