"""Tests of the inference layer and model set-up (real models from the model directory)."""
