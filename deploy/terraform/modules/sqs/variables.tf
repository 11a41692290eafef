variable "name" {
  description = "Base name of the queues: NAME.fifo and NAME-dlq.fifo (SQS_QUEUE_NAME, SQS_DLQ_NAME)."
  type        = string
  default     = "contacts-events"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,70}$", var.name))
    error_message = "The name must be 1-70 letters, digits, hyphens or underscores (without .fifo)."
  }
}

variable "visibility_timeout_seconds" {
  description = "Seconds SQS hides a received message (SQS_VISIBILITY_TIMEOUT_S): longer than the worker's task hard limit."
  type        = number
  default     = 60
}

variable "worker_task_time_limit_seconds" {
  description = "The worker's Celery hard time limit (TASK_TIME_LIMIT_S); the visibility timeout must exceed it."
  type        = number
  default     = 45

  validation {
    condition     = var.visibility_timeout_seconds > var.worker_task_time_limit_seconds
    error_message = "visibility_timeout_seconds must be longer than the worker's task hard limit, or SQS hands a running task's message to another worker."
  }
}

variable "max_receive_count" {
  description = "Receives before SQS moves a message to the dead-letter queue (SQS_MAX_RECEIVE_COUNT)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "message_retention_seconds" {
  description = "How long the main queue keeps a message (4 days)."
  type        = number
  default     = 345600
}

variable "dlq_message_retention_seconds" {
  description = "How long the dead-letter queue keeps a message: 14 days, the SQS maximum, to inspect poison messages."
  type        = number
  default     = 1209600
}

variable "create_kms_key" {
  description = "Encrypt both queues with a customer managed KMS key made here (rotated yearly). False: SQS-managed keys (SSE-SQS)."
  type        = bool
  default     = true
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the queues' KMS key is deleted."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
