"""What the machine has for a run: free device memory, the memory cap, usable CPU cores."""
