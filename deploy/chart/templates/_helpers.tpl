{{/* Labels on every object. */}}
{{- define "kvpa.labels" -}}
app.kubernetes.io/name: kvpa
app.kubernetes.io/component: controller
{{- end -}}

{{/* The controller's flags (the image's ENTRYPOINT is `kvpa controller`). */}}
{{- define "kvpa.args" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicas > 1 needs leaderElection.enabled=true: without a Lease every replica would scale" -}}
{{- end -}}
{{- if gt (len .Values.watchNamespaces) 1 -}}
{{- fail "watchNamespaces: the controller watches one namespace or all; give at most one" -}}
{{- end -}}
{{- if .Values.leaderElection.enabled }}
- --leader-elect
{{- with .Values.leaderElection.leaseNamespace }}
- --lease-namespace
- {{ . | quote }}
{{- end }}
{{- end }}
{{- range .Values.watchNamespaces }}
- --namespace
- {{ . | quote }}
{{- end }}
- --metrics-port
- {{ .Values.metrics.port | quote }}
{{- with .Values.metrics.bindAddress }}
- --metrics-address
- {{ . | quote }}
{{- end }}
{{- with .Values.grafana.allowedHosts }}
- --allowed-hosts
- {{ join "," . | quote }}
{{- end }}
- --log-level
- {{ .Values.logLevel | quote }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
