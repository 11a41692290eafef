{{/* The service's settings (docs/contracts.md): plain ones in a ConfigMap, secret ones in a Secret. */}}

{{- define "contacts-common.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "contacts-common.names.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "contacts-common.labels.standard" . | nindent 4 }}
  {{- with .Values.commonAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
data:
  {{- range $name, $value := .Values.config }}
  {{ $name }}: {{ $value | toString | quote }}
  {{- end }}
{{- end -}}

{{/* Rendered only when the operator gives the secret settings in values (not the default). */}}
{{- define "contacts-common.secret" -}}
{{- if and .Values.secrets (not .Values.existingSecret) -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "contacts-common.names.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "contacts-common.labels.standard" . | nindent 4 }}
  {{- with .Values.commonAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
type: Opaque
stringData:
  {{- range $name, $value := .Values.secrets }}
  {{ $name }}: {{ $value | toString | quote }}
  {{- end }}
{{- end -}}
{{- end -}}
