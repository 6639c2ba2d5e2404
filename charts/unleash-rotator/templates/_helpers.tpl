{{/* The chart's name, or nameOverride. */}}
{{- define "unleash-rotator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Objects' name: fullnameOverride, else the release name if it holds the chart's name, else both. */}}
{{- define "unleash-rotator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select the rotator's pods. */}}
{{- define "unleash-rotator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "unleash-rotator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "unleash-rotator.labels" -}}
{{ include "unleash-rotator.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "unleash-rotator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "unleash-rotator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository:tag@digest. */}}
{{- define "unleash-rotator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Lease each pass holds (config.lock.kubernetes.name). */}}
{{- define "unleash-rotator.leaseName" -}}
{{- $lock := .Values.config.lock | default dict }}
{{- $k := $lock.kubernetes | default dict }}
{{- $k.name | default "unleash-rotator" }}
{{- end }}

{{/* The daemon's metrics port, from config.metrics.listen (":9464", "0.0.0.0:9464"). */}}
{{- define "unleash-rotator.metricsPort" -}}
{{- $m := .Values.config.metrics | default dict }}
{{- $port := regexFind "[0-9]+$" ($m.listen | default "") }}
{{- if not $port }}
{{- fail "mode daemon needs config.metrics.listen (e.g. \":9464\"): the probes use /healthz and /readyz" }}
{{- end }}
{{- $port }}
{{- end }}

{{/*
The pod template, the same for both modes but for the command and, in daemon
mode, the port and probes. The securityContext and the Secret volume's mode
are what let uid 65532 read the root-owned credential file: the kubelet gives
the volume's files the group fsGroup (and the group read bit).
*/}}
{{- define "unleash-rotator.podTemplate" -}}
metadata:
  labels:
    {{- include "unleash-rotator.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- $annotations := dict }}
  {{- if eq .Values.mode "daemon" }}
  {{- /* The daemon reads its configuration at start: roll it when it changes. */}}
  {{- $_ := set $annotations "checksum/config" (include (print $.Template.BasePath "/configmap.yaml") . | sha256sum) }}
  {{- end }}
  {{- $annotations = merge $annotations (.Values.podAnnotations | default dict) }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "unleash-rotator.serviceAccountName" . }}
  {{- if eq .Values.mode "cronjob" }}
  restartPolicy: Never
  terminationGracePeriodSeconds: {{ .Values.cronjob.terminationGracePeriodSeconds }}
  {{- else }}
  terminationGracePeriodSeconds: {{ .Values.daemon.terminationGracePeriodSeconds }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    fsGroup: 65532
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: rotator
      image: {{ include "unleash-rotator.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      {{- if eq .Values.mode "cronjob" }}
      args: ["once", "--config", "/etc/unleash-rotator/config.yaml"]
      {{- else }}
      args: ["run", "--config", "/etc/unleash-rotator/config.yaml"]
      ports:
        - name: metrics
          containerPort: {{ include "unleash-rotator.metricsPort" . }}
      livenessProbe:
        httpGet: {path: /healthz, port: metrics}
        periodSeconds: 30
        failureThreshold: 3
      readinessProbe:
        httpGet: {path: /readyz, port: metrics}
        periodSeconds: 15
      {{- end }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      volumeMounts:
        - {name: config, mountPath: /etc/unleash-rotator, readOnly: true}
        - name: unleash
          mountPath: {{ .Values.unleash.mountPath }}
          readOnly: true
        - {name: tmp, mountPath: /tmp}
        {{- if .Values.vaultAuth.enabled }}
        - name: vault-token
          mountPath: {{ .Values.vaultAuth.mountPath }}
          readOnly: true
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "unleash-rotator.fullname" . }}
    - name: unleash
      secret:
        secretName: {{ required "unleash.existingSecret is required: the Secret holding the rotator's Unleash credential" .Values.unleash.existingSecret }}
        defaultMode: 0440
        {{- if ne .Values.unleash.existingSecretKey "token" }}
        items:
          - {key: {{ .Values.unleash.existingSecretKey }}, path: token}
        {{- end }}
    - name: tmp
      emptyDir: {sizeLimit: 16Mi}
    {{- if .Values.vaultAuth.enabled }}
    - name: vault-token
      projected:
        sources:
          - serviceAccountToken:
              path: token
              audience: {{ .Values.vaultAuth.audience }}
              expirationSeconds: {{ int .Values.vaultAuth.expirationSeconds }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
