output "layer_version_arn" {
  value = alab_layer.deps.layer_version_arn
}

output "layer_version" {
  value = alab_layer.deps.layer_version
}

output "publish_reason" {
  value = alab_layer.deps.publish_reason
}

output "function_layers" {
  value = aws_lambda_function.app.layers
}
