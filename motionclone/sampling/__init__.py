"""The method run on a loaded model: extraction, the denoising loop and its passes, low memory, the VAE."""
