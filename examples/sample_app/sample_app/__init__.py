"""The sample Lambda function: its code ships in the function, its dependencies in the layer."""
