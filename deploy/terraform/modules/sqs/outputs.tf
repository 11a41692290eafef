output "queue_name" {
  description = "SQS_QUEUE_NAME."
  value       = aws_sqs_queue.main.name
}

output "queue_url" {
  description = "SQS_QUEUE_URL."
  value       = aws_sqs_queue.main.url
}

output "queue_arn" {
  description = "ARN of the main queue."
  value       = aws_sqs_queue.main.arn
}

output "dlq_name" {
  description = "SQS_DLQ_NAME."
  value       = aws_sqs_queue.dlq.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "kms_key_arn" {
  description = "The queues' customer managed key, or null with SSE-SQS."
  value       = local.kms_key_arn
}

output "visibility_timeout_seconds" {
  description = "SQS_VISIBILITY_TIMEOUT_S."
  value       = aws_sqs_queue.main.visibility_timeout_seconds
}

output "max_receive_count" {
  description = "SQS_MAX_RECEIVE_COUNT."
  value       = var.max_receive_count
}

output "producer_policy_json" {
  description = "IAM policy of the command API's role: send to the main queue."
  value       = data.aws_iam_policy_document.producer.json
}

output "consumer_policy_json" {
  description = "IAM policy of the worker's role: receive, delete and change visibility on the main queue."
  value       = data.aws_iam_policy_document.consumer.json
}
