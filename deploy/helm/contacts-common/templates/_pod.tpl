{{/* Pieces of a hardened pod: non-root, read-only root filesystem, no capabilities, seccomp. */}}

{{- define "contacts-common.podSecurityContext" -}}
{{- if .Values.podSecurityContext.enabled -}}
{{- omit .Values.podSecurityContext "enabled" | toYaml -}}
{{- end -}}
{{- end -}}

{{- define "contacts-common.containerSecurityContext" -}}
{{- if .Values.containerSecurityContext.enabled -}}
{{- omit .Values.containerSecurityContext "enabled" | toYaml -}}
{{- end -}}
{{- end -}}

{{/* The only writable paths: /tmp as an emptyDir (gunicorn and Celery use /dev/shm). */}}
{{- define "contacts-common.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpDirSizeLimit | quote }}
{{- end -}}

{{- define "contacts-common.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "contacts-common.envFrom" -}}
- configMapRef:
    name: {{ include "contacts-common.names.fullname" . }}
{{- if or .Values.existingSecret .Values.secrets }}
- secretRef:
    name: {{ include "contacts-common.secretName" . }}
{{- end }}
{{- end -}}

{{- define "contacts-common.affinity" -}}
{{- if .Values.affinity -}}
{{- toYaml .Values.affinity -}}
{{- else if eq .Values.podAntiAffinityPreset "hard" -}}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "contacts-common.labels.matchLabels" . | nindent 10 }}
{{- else if eq .Values.podAntiAffinityPreset "soft" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "contacts-common.labels.matchLabels" . | nindent 12 }}
{{- end -}}
{{- end -}}

{{/* Scheduling and hardening shared by every pod spec of the charts. */}}
{{- define "contacts-common.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with (include "contacts-common.affinity" .) }}
affinity:
  {{- . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (include "contacts-common.podSecurityContext" .) }}
securityContext:
  {{- . | nindent 2 }}
{{- end }}
{{- end -}}
