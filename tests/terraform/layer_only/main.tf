# alab_layer alone (no hashicorp/aws, whose start-up costs seconds per command): for the tests of
# drift, destroy, plan/apply consistency and input errors. examples/terraform covers the full stack.

terraform {
  required_providers {
    alab = { source = "terraform.local/alab/alab" }
  }
}

variable "bucket" { type = string }
variable "path_pyproject_toml" { type = string }
variable "aws_endpoint_url" { type = string }
variable "app_name" { type = string }
variable "tool" { type = string }
variable "index_name" { type = string }
variable "index_url" { type = string }
variable "index_username" { type = string }
variable "python_version" {
  type    = string
  default = "3.12"
}
variable "architecture" {
  type    = string
  default = "x86_64"
}
variable "delete_on_destroy" {
  type    = bool
  default = false
}
variable "index_password" {
  type      = string
  sensitive = true
  ephemeral = true
}

provider "alab" {
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint_url
}

resource "alab_layer" "deps" {
  layer_name          = "${var.app_name}-deps"
  path_pyproject_toml = var.path_pyproject_toml
  s3dir_lambda        = "s3://${var.bucket}/lambda/${var.app_name}/"
  tool                = var.tool
  python_version      = var.python_version
  architecture        = var.architecture
  delete_on_destroy   = var.delete_on_destroy
  credentials = {
    index_name = var.index_name
    index_url  = var.index_url
    username   = var.index_username
    password   = var.index_password
  }
}

output "layer_version" {
  value = alab_layer.deps.layer_version
}
