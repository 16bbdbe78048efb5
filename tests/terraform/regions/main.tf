# One alab_layer per region (for_each) sharing one artifact store: the first instance to need the
# fingerprint builds it, every other region copies the stored zip. The README's Terraform snippet.

terraform {
  required_providers {
    alab = { source = "terraform.local/alab/alab" }
  }
}

variable "bucket_prefix" { type = string } # one bucket per region: <prefix>-<region>
variable "path_pyproject_toml" { type = string }
variable "aws_endpoint_url" { type = string }
variable "app_name" { type = string }
variable "tool" { type = string }
variable "index_name" { type = string }
variable "index_url" { type = string }
variable "index_username" { type = string }
variable "index_password" {
  type      = string
  sensitive = true
  ephemeral = true
}
variable "regions" {
  type    = set(string)
  default = ["us-east-1", "eu-west-1"]
}

provider "alab" {
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint_url
}

resource "alab_layer" "deps" {
  for_each            = var.regions
  region              = each.key
  layer_name          = "${var.app_name}-deps"
  path_pyproject_toml = var.path_pyproject_toml
  s3dir_lambda        = "s3://${var.bucket_prefix}-${each.key}/lambda/${var.app_name}/"
  artifact_store      = "s3://${var.bucket_prefix}-us-east-1/layer-store/"
  tool                = var.tool
  credentials = {
    index_name = var.index_name
    index_url  = var.index_url
    username   = var.index_username
    password   = var.index_password
  }
}

output "layer_version_arn" {
  value = { for region, layer in alab_layer.deps : region => layer.layer_version_arn }
}

output "code_sha256" {
  value = { for region, layer in alab_layer.deps : region => layer.code_sha256 }
}
