# One alab_layer per (region, account) target (for_each over a map) sharing one artifact store: a target
# with a role_arn publishes in that role's account (STS AssumeRole; the assumed credentials are never in
# state), while the store is read and written with the provider's own credentials. One build; every
# other target copies the stored zip. The README's Terraform snippet for accounts.

terraform {
  required_providers {
    alab = { source = "terraform.local/alab/alab" }
  }
}

variable "bucket_prefix" { type = string } # one bucket per target: <prefix>-<target key>
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
variable "targets" {
  # key: a name of the target (in its bucket's name); role_arn null: the provider's own account
  type = map(object({ region = string, role_arn = optional(string) }))
}
variable "store_target" { type = string } # the key of the target whose bucket holds the store

provider "alab" {
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint_url
}

resource "alab_layer" "deps" {
  for_each            = var.targets
  region              = each.value.region
  role_arn            = each.value.role_arn
  layer_name          = "${var.app_name}-deps"
  path_pyproject_toml = var.path_pyproject_toml
  s3dir_lambda        = "s3://${var.bucket_prefix}-${each.key}/lambda/${var.app_name}/"
  artifact_store      = "s3://${var.bucket_prefix}-${var.store_target}/layer-store/"
  tool                = var.tool
  credentials = {
    index_name = var.index_name
    index_url  = var.index_url
    username   = var.index_username
    password   = var.index_password
  }
}

output "layer_version_arn" {
  value = { for key, layer in alab_layer.deps : key => layer.layer_version_arn }
}

output "code_sha256" {
  value = { for key, layer in alab_layer.deps : key => layer.code_sha256 }
}
