# slurm/common.sh — sourced by the batch scripts: refuse to run outside SLURM, say where and when.
if [ -z "${SLURM_JOB_ID:-}" ]; then
  echo "$(basename "$0"): not inside a SLURM job (no SLURM_JOB_ID): submit it with sbatch, e.g. 'sbatch $0'" >&2
  exit 2
fi
echo "job ${SLURM_JOB_ID}${SLURM_ARRAY_TASK_ID:+ task $SLURM_ARRAY_TASK_ID} on $(scontrol show hostnames "${SLURM_JOB_NODELIST:-localhost}" 2>/dev/null | paste -sd, || echo "${SLURM_JOB_NODELIST:-?}"), ${SLURM_NTASKS:-1} tasks, started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
# one BLAS thread per core a task owns
export OPENBLAS_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1} OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
