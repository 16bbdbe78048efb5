# A Lambda function whose dependencies ship as a layer published by alab_layer.
# `terraform plan` tells from the fingerprint recorded in S3, without building, whether a new layer
# version will be published and why; `terraform apply` publishes only then.

terraform {
  required_version = ">= 1.11" # write-only arguments keep the index credentials out of plan and state
  required_providers {
    alab = { source = "terraform.local/alab/alab" } # written by `alab terraform install`
    aws  = { source = "hashicorp/aws", version = "~> 5.100" }
  }
}

locals {
  # A local endpoint (moto, LocalStack) has no real account or instance metadata.
  local_endpoint      = var.aws_endpoint_url != null
  path_pyproject_toml = coalesce(var.path_pyproject_toml, "${path.module}/../sample_app_pypi/pyproject.toml")
  # Build it with: python -m zipfile -c examples/terraform/build/function.zip examples/sample_app_pypi/sample_app_pypi
  function_zip = coalesce(var.function_zip, "${path.module}/build/function.zip")
}

provider "aws" {
  region                      = var.aws_region
  skip_credentials_validation = local.local_endpoint
  skip_requesting_account_id  = local.local_endpoint
  skip_metadata_api_check     = local.local_endpoint
  s3_use_path_style           = local.local_endpoint
  endpoints {
    s3     = var.aws_endpoint_url
    lambda = var.aws_endpoint_url
    iam    = var.aws_endpoint_url
    sts    = var.aws_endpoint_url
  }
}

provider "alab" {
  region       = var.aws_region
  endpoint_url = var.aws_endpoint_url
}

resource "alab_layer" "deps" {
  layer_name          = "${var.app_name}-deps"
  path_pyproject_toml = local.path_pyproject_toml
  s3dir_lambda        = "s3://${var.bucket}/lambda/${var.app_name}/"
  tool                = var.tool
  python_version      = var.python_version
  architecture        = var.architecture
  keep_last           = var.keep_last
  delete_on_destroy   = var.delete_on_destroy

  # Write-only: handed to pip/poetry/uv during apply, never stored in a plan or in state.
  credentials = var.index_password == null ? null : {
    index_name = var.index_name
    index_url  = var.index_url
    username   = var.index_username
    password   = var.index_password
  }
}

resource "aws_iam_role" "function" {
  name = "${var.app_name}-function"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "lambda.amazonaws.com" }
    }]
  })
}

resource "aws_iam_role_policy" "logs" {
  name = "logs"
  role = aws_iam_role.function.name
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = "*"
    }]
  })
}

resource "aws_lambda_function" "app" {
  function_name    = var.app_name
  role             = aws_iam_role.function.arn
  runtime          = "python${var.python_version}"
  architectures    = [var.architecture]
  handler          = var.handler
  filename         = local.function_zip
  source_code_hash = filebase64sha256(local.function_zip)
  layers           = [alab_layer.deps.layer_version_arn]
}
