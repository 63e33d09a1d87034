/* h5util.h — the HDF5 toolkit of storage/ (private to storage/: no other folder includes hdf5.h):
 * one check macro, error text from HDF5's error stack, handle closing, scalar attributes, and
 * the HDF5 types of the store's dtypes. Local. */
#ifndef IFK_H5UTIL_H
#define IFK_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>

#include "dtype.h"
#include "status.h"

/* Turns HDF5's printing of its error stack off (once per process): library code prints nothing,
 * failures become ifk_status messages. Every storage entry point that calls HDF5 calls this. */
void ifk_h5_init(void);

/* Sets IFK_ERR_H5 with "<message> (HDF5: <innermost error on HDF5's stack>)", or just the
 * message when the stack is empty, clears the stack, and returns IFK_ERR_H5. */
ifk_status ifk_h5_fail_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define IFK_H5_FAIL(...) ifk_h5_fail_at(__FILE__, __LINE__, __VA_ARGS__)

/* The one HDF5 check: when expr (an HDF5 result: hid_t, herr_t, htri_t...) is negative, sets st
 * with ifk_h5_fail_at's message and jumps to `fail`. */
#define IFK_H5_CHECK(st, expr, ...)                                     \
    do {                                                                \
        if ((expr) < 0) {                                               \
            (st) = IFK_H5_FAIL(__VA_ARGS__);                             \
            goto fail;                                                  \
        }                                                               \
    } while (0)

/* Closes any HDF5 handle (file, group, dataset, dataspace, type, attribute, property list, object)
 * and sets it to H5I_INVALID_HID; a negative id is left alone. */
void ifk_h5_close(hid_t *id);

/* Marks the library as holding a file it cannot close (HDF5 1.10.8: a close whose flush failed,
 * e.g. on a full disk, leaves the file half-closed; closing it again at library termination, from
 * MPI_Finalize, crashes). ifk_store_hdf5_broken (store.h) then tells the driver to exit without
 * terminating HDF5. */
void ifk_h5_set_broken(void);

/* The file and memory type of a dtype: IEEE binary16 and bfloat16 are HDF5 float types of 2 bytes
 * with their bit fields (h5py and h5dump read them as floats). Caller closes. */
hid_t ifk_h5_dtype(ifk_dtype d);
/* A variable-length UTF-8 string type. Caller closes. */
hid_t ifk_h5_vlen_str(void);

/* Scalar attributes: int64, float64 and variable-length UTF-8 string. Negative on failure. */
herr_t ifk_h5_attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *val);
herr_t ifk_h5_attr_int(hid_t obj, const char *name, long long v);
herr_t ifk_h5_attr_dbl(hid_t obj, const char *name, double v);
herr_t ifk_h5_attr_str(hid_t obj, const char *name, const char *v);
/* Reads an integer attribute (any integer type) / a string attribute (variable- or fixed-length,
 * truncated to cap); 1 on success, 0 when missing or of another class. */
int ifk_h5_attr_read_int(hid_t obj, const char *name, long long *v);
int ifk_h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t cap);

/* 1 when dataset ds has this rank and dims and elements of this class and size. */
int ifk_h5_shape_ok(hid_t ds, int rank, const hsize_t *dims, H5T_class_t cls, size_t size);

#endif
