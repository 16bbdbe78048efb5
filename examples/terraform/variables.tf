variable "bucket" {
  description = "Existing S3 bucket for layer artifacts and records; stacks sharing it share layer versions."
  type        = string
}

variable "path_pyproject_toml" {
  description = "The application's pyproject.toml, next to its lock file (default: examples/sample_app_pypi, locked by uv against PyPI)."
  type        = string
  default     = null
}

variable "function_zip" {
  description = "Zip of the function's own code; the dependencies come from the layer (default: build/function.zip)."
  type        = string
  default     = null
}

variable "handler" {
  type    = string
  default = "sample_app_pypi.handler.lambda_handler"
}

variable "app_name" {
  type    = string
  default = "sample-app"
}

variable "tool" {
  description = "pip, poetry or uv (the default app, examples/sample_app_pypi, is locked by uv)."
  type        = string
  default     = "uv"
}

variable "python_version" {
  type    = string
  default = "3.12"
}

variable "architecture" {
  type    = string
  default = "x86_64"
}

variable "keep_last" {
  description = "Keep this many of the newest layer versions; older ones published by alab are deleted."
  type        = number
  default     = 5
}

variable "delete_on_destroy" {
  description = "Delete the layer versions this configuration published when it is destroyed."
  type        = bool
  default     = false
}

variable "aws_region" {
  type    = string
  default = "us-east-1"
}

variable "aws_endpoint_url" {
  description = "A local AWS endpoint (e.g. a moto server); null for real AWS."
  type        = string
  default     = null
}

variable "index_name" {
  description = "Name of the private package index as the lock file spells it (e.g. [[tool.uv.index]] name)."
  type        = string
  default     = "private"
}

variable "index_url" {
  type    = string
  default = null
}

variable "index_username" {
  type    = string
  default = null
}

variable "index_password" {
  description = "Pass with TF_VAR_index_password; ephemeral, so no plan file or state keeps it."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}
