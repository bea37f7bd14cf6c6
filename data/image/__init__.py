"""Image data: Fashion-MNIST (IDX), MNIST 5k, scikit-learn digits and image folders."""
