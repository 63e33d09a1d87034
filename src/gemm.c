/* gemm.c — the one place that calls BLAS. Every matrix product of the engine comes through here. */
#include "kernels.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void ifk_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (M == 1) {
        /* row vector a(K) times op(B): y(N) = op(B)^T a. With B row-major (K,N) that is B^T a
         * (CblasTrans); with B stored (N,K) and tb set it is B a (CblasNoTrans). */
        if (tb)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, ta ? lda : 1, beta, C, 1);
        else
            cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, ta ? lda : 1, beta, C, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, B, ldb, beta, C, ldc);
}

void ifk_matmul(float *Y, const float *X, const float *W, int T, int in, int out) {
    ifk_gemm(0, 1, T, out, in, 1.0f, X, in, W, in, 0.0f, Y, out);
}

/* OpenBLAS extensions, declared in its cblas.h */
void ifk_blas_set_threads(int n) {
    if (n <= 0) return;
    openblas_set_num_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n); /* the store reader's parallel loops follow the same budget */
#endif
}
int ifk_blas_threads(void) { return openblas_get_num_threads(); }
const char *ifk_blas_config(void) { return openblas_get_config(); }
